"""The `tierdesk` command: one module per command group and the helpers they share."""
