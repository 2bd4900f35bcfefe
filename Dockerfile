# One image for every qruntime process: the API, the workers and Flower.
# It runs as the unprivileged qruntime user; only the worker overrides that (user 0 with a
# handful of capabilities, see docker-compose.yml), to give each job a uid of its own.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QISKIT_IN_PARALLEL=TRUE

# libseccomp: the worker builds each job's syscall filter with it (through pyseccomp).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libseccomp2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/qruntime
COPY setup.cfg pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY api ./api
COPY qruntime ./qruntime
COPY programs ./programs
# The import check fails the build, not every job, if pyseccomp or libseccomp is missing.
RUN pip install --no-cache-dir -e ".[monitor]" \
    && python -c "import pyseccomp" \
    && useradd --create-home --uid 1000 qruntime
USER qruntime
EXPOSE 8000
CMD ["qruntime", "api", "--host", "0.0.0.0", "--port", "8000"]
