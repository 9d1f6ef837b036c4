FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY growalert growalert
COPY monitors monitors
COPY billing billing
COPY alerts_core alerts_core
RUN pip install --no-cache-dir .
COPY . .
RUN DJANGO_DEBUG=true python manage.py collectstatic --no-input -v0
EXPOSE 8000
CMD ["gunicorn", "growalert.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4"]
