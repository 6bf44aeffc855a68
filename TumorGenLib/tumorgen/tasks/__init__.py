"""Built-in backend tasks. Importing this package registers them."""

from tumorgen.tasks import smoke  # noqa: F401
from tumorgen.tasks import grow  # noqa: F401
from tumorgen.tasks import tissues  # noqa: F401
from tumorgen.tasks import simulate  # noqa: F401
from tumorgen.tasks import inpaint  # noqa: F401
from tumorgen.tasks import postop  # noqa: F401
from tumorgen.tasks import followup  # noqa: F401
from tumorgen.tasks import synthesize  # noqa: F401
