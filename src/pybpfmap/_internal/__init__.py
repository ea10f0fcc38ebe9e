"""pybpfmap's private machinery: the bindings over the extension, argument checks, the lifetime base, map
creation, element access, iteration, batches, record consumers and the refusal table. Nothing here is API."""
