"""Settings for ``bench_api.py --ceiling``: the project's, with bench/api_ceiling.py's URLs."""

from growalert.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_ceiling"
