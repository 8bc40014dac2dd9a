# One image for every Bulletin role: web, worker, beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BULLETIN_VAR_DIR=/var/lib/bulletin
WORKDIR /app
COPY pyproject.toml ./
COPY requirements ./requirements
COPY bulletin ./bulletin
RUN pip install --no-cache-dir -c requirements/constraints.txt . \
    && useradd --system --home /var/lib/bulletin --create-home bulletin
USER bulletin
EXPOSE 8000
CMD ["bulletin", "run", "--host", "0.0.0.0", "--port", "8000"]
