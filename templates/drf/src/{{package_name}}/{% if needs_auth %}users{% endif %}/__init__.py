"""The users app: sign-in with bearer tokens, sign-up, the current user and `createuser`."""
