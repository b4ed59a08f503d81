"""Operating a node: the subcommands of ``coffeechat`` that set up, check and run a deployment."""
