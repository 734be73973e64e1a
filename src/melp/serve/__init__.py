"""``melp serve``: a web page and HTTP API where a person drops an ECG file and sees what the model sees.

:class:`ServeConfig` holds the settings, :class:`PredictionService` the model (loaded once) and
:func:`create_app` builds the FastAPI application; the page and its assets live in ``static/``.
See docs/serve.md.
"""

from melp.serve.app import create_app
from melp.serve.config import ServeConfig
from melp.serve.service import PredictError, PredictionService

__all__ = ["PredictError", "PredictionService", "ServeConfig", "create_app"]
