from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed ragtune version, or ``0+unknown`` when running from a source tree."""
    try:
        return version("ragtune")
    except PackageNotFoundError:
        return "0+unknown"
