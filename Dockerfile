# One image for every qruntime process: the API, the workers and Flower.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QISKIT_IN_PARALLEL=TRUE

WORKDIR /srv/qruntime
COPY setup.cfg pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY api ./api
COPY qruntime ./qruntime
COPY programs ./programs
RUN pip install --no-cache-dir -e ".[monitor]" \
    && useradd --create-home --uid 1000 qruntime
USER qruntime
EXPOSE 8000
CMD ["qruntime", "api", "--host", "0.0.0.0", "--port", "8000"]
