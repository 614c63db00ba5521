from edgetp.cli import main

raise SystemExit(main())
