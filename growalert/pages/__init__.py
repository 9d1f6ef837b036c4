"""Server-rendered web pages: signup and checkout, dashboard, monitors, channels, account."""
