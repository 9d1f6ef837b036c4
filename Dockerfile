FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY growalert growalert
COPY monitors monitors
COPY billing billing
COPY alerts_core alerts_core
COPY shared shared
RUN pip install --no-cache-dir .
COPY . .
# With DEBUG off, pages name static files through the manifest that only a collectstatic run
# in production mode writes (the keys here are placeholders used for this one command).
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only FIELD_ENCRYPTION_KEY=collectstatic-only \
    python manage.py collectstatic --no-input -v0
EXPOSE 8000
CMD ["python", "-m", "growalert.serve", "--host", "0.0.0.0", "--port", "8000"]
