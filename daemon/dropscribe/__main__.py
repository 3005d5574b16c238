from dropscribe.commands.cli import main

raise SystemExit(main())
