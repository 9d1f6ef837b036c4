"""The fault drill reuses the notification tests' real receivers and the seeded InfluxDB."""

from tests.monitors.conftest import influx_db  # noqa: F401 (shared fixture)
from tests.notify.conftest import receiver  # noqa: F401 (shared fixture)
