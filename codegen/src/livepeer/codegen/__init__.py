"""Capability schemas to typed SDK wrappers: the generator behind `make generate` and `livepeer generate`.

``python -m livepeer.codegen render`` renders ``generated/`` from ``schemas/``; see docs/codegen.md.
"""

from livepeer.codegen._errors import CodegenError
from livepeer.codegen.cli import generate, import_schemas, main, render

__version__ = "0.1.0"

__all__ = ["CodegenError", "__version__", "generate", "import_schemas", "main", "render"]
