"""Web plumbing every app may use (links, errors, parsers, pagination, the request owner,
multiprocess metrics). Imports nothing from the apps or the project package."""
