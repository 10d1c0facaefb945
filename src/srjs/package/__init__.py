"""npm-ready browser packages: `write_package` (package.json, models, definition modules,
README, LICENSE, demo page) and `serve` (the package on 127.0.0.1 with COOP/COEP)."""
from srjs.package.serve import serve
from srjs.package.writer import check_name, check_version, write_package

__all__ = ["write_package", "serve", "check_name", "check_version"]
