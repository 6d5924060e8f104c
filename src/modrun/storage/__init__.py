"""Where the app (plugins, schemas, manifest, .env files) is stored: a local
directory or an S3 prefix. Both present a local directory to the loaders."""
