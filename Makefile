# Two commands do all set-up on a fresh Debian/Ubuntu machine (see README.md):
#   make demo   builds .venv (CPU torch 2.13.0, napari, MONAI, ...) and runs the demo project
#   make test   builds .venv plus the Xvfb packages and runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
XVFB_DEBS := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0 \
	libxkbcommon-x11-0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0 \
	libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3

.PHONY: setup system-deps demo test lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned CPU torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

system-deps:
	@if ! dpkg -s $(XVFB_DEBS) >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(XVFB_DEBS) >/dev/null; \
	fi

demo: setup system-deps
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/bin/atlas-annotate demo; \
	else \
		echo "No display: running the demo headless (screenshot + summary)."; \
		$(VENV)/bin/atlas-annotate demo --headless; \
	fi

test: setup system-deps
	$(VENV)/bin/ruff check napari_atlas_annotate tests bench scripts sample_data
	$(VENV)/bin/ruff format --check napari_atlas_annotate tests bench scripts sample_data
	$(VENV)/bin/pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .
