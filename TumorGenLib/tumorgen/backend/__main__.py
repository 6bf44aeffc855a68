import sys

from tumorgen.backend.protocol import main

sys.exit(main())
