from tumorgen.threads import prepare_environment

prepare_environment()  # before PyTorch is imported (OpenMP reads it when it loads); runners also set it for the job

from tumorgen.backend.protocol import main  # noqa: E402
from tumorgen.shutdown import exit_now  # noqa: E402

exit_now(main())  # without the interpreter's slow finalisation once PyTorch is loaded
