"""Sphinx configuration of carrot's documentation."""

import django
from django.conf import settings

import carrot

# autodoc imports carrot.utils, which imports carrot's models: Django must
# be set up, with carrot installed, before any page is read.
settings.configure(
    INSTALLED_APPS=["carrot"],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
django.setup()

project = "carrot"
author = "The djangocarrot developers"
copyright = "The djangocarrot developers"
release = carrot.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

# Single backticks in docstrings, as in `TaskStore`, refer to Python
# objects.
default_role = "py:obj"
autodoc_member_order = "bysource"
autodoc_typehints = "description"

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {
    "description": "A task queue for Django that keeps every task as a row.",
}
