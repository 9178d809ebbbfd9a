"""The app object for a WSGI server of your own:

    NEWSLETTER_CONFIG=/srv/zeitgeist/newsletter.yaml gunicorn 'composer.service.wsgi:app'

It serves the pages and the webhook but runs no background job: `newsletter serve` does
both (one process). Secrets come from the environment, or a .env beside the settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from composer.service import create_app
from composer.settings import load_settings

_config = Path(os.environ.get("NEWSLETTER_CONFIG", "newsletter.yaml"))
if (_config.parent / ".env").is_file():
    from dotenv import load_dotenv

    load_dotenv(_config.parent / ".env")
app = create_app(load_settings(_config))
