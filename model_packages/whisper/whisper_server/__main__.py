"""`python -m whisper_server serve`: SageMaker starts the image with the argument `serve`."""

import sys

from .server import main

sys.exit(main())
