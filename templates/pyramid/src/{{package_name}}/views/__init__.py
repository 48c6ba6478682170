"""View callables, registered with `@view_config` and found by `config.scan()`."""
