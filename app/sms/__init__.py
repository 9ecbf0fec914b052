"""The SMS channel: the same flows as numbered text menus, keywords, paging and opt-out."""
