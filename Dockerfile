# The Cloud Run image of the Phase 4 flows: `prefect deploy --all` builds and pushes it
# (prefect.yaml); the cloud-run-v2 worker starts one job per flow run with this image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PHASE4_CODE_DIR=/opt/phase4

WORKDIR /opt/phase4

# Dependencies first, pinned by the lock file, so a code change does not reinstall them.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install -c requirements.lock -r requirements.txt

# The flow code; prefect.yaml's pull step makes PHASE4_CODE_DIR the working directory.
COPY README.md ./
COPY flows/ flows/
COPY tasks/ tasks/
COPY features/ features/
COPY quality/ quality/
COPY phase4/ phase4/
COPY nba_calendar/ nba_calendar/
COPY demo_data/ demo_data/
# Compiled here: the image never writes bytecode, and pip compiles no editable project.
RUN pip install --no-deps -e . \
    && python -m compileall -q flows tasks features quality phase4 nba_calendar demo_data \
    && useradd --create-home --uid 10001 phase4

USER 10001
