"""Imports superset/bundle into Superset, run by scripts/superset.sh with the venv's Python.

The bundle is kept as a YAML tree; this zips it in the layout `superset import-dashboards -p`
reads, with the database URI of the running tweetlake but its password masked (XXXXXXXXXX,
as Superset's own exports have it: the zip is for reading, the secret stays in memory).  It
imports the files with the URI as given (TWEETLAKE_SUPERSET_URI, passed in the environment so
the reader's password never shows in a process list) through Superset's asset importer, which,
unlike import-dashboards, also overwrites charts and datasets already there, so a changed
bundle or a moved server takes effect.

usage: python import_bundle.py BUNDLE_DIR ZIP_OUT ADMIN_USER
"""
import os
import sys
import zipfile

import yaml


def read_bundle(bundle_dir, uri):
    contents = {}
    for dirpath, _, files in sorted(os.walk(bundle_dir)):
        for name in sorted(files):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, bundle_dir)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if rel.startswith("databases/"):
                config = yaml.safe_load(text)
                config["sqlalchemy_uri"] = uri
                text = yaml.safe_dump(config, sort_keys=False)
            contents[rel] = text
    return contents


def for_tenant(contents):
    """What a tenant's Superset imports: no dataset of the status views (schema tweetlake,
    every source's workers, which a tenant's role may not read), no chart of one, and no
    dashboard left with none of its charts."""
    gone = set()
    for rel, text in list(contents.items()):
        if rel.startswith("datasets/"):
            config = yaml.safe_load(text)
            if config.get("schema") == "tweetlake":
                gone.add(config["uuid"])
                del contents[rel]
    charts = set()
    for rel, text in list(contents.items()):
        if rel.startswith("charts/"):
            config = yaml.safe_load(text)
            if config.get("dataset_uuid") in gone:
                charts.add(config["uuid"])
                del contents[rel]
    for rel, text in list(contents.items()):
        if rel.startswith("dashboards/") and any(u in text for u in charts):
            del contents[rel]
    return contents


def masked(uri):
    """The URI with its password replaced by Superset's mask."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(":" + parts.password + "@", ":XXXXXXXXXX@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def write_zip(contents, zip_out):
    # The importer drops the first path component: everything sits in one folder.
    old_umask = os.umask(0o077)
    try:
        with zipfile.ZipFile(zip_out, "w", zipfile.ZIP_DEFLATED) as z:
            for rel, text in contents.items():
                z.writestr(f"tweetlake_dashboards/{rel}", text)
    finally:
        os.umask(old_umask)


def main():
    bundle_dir, zip_out, admin = sys.argv[1:4]
    uri = os.environ["TWEETLAKE_SUPERSET_URI"]
    tenant = os.environ.get("TWEETLAKE_SUPERSET_TENANT", "")
    pick = for_tenant if tenant else (lambda c: c)
    write_zip(pick(read_bundle(bundle_dir, masked(uri))), zip_out)
    contents = pick(read_bundle(bundle_dir, uri))

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from flask import g
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.extensions import security_manager

        g.user = security_manager.find_user(username=admin)
        if g.user is None:
            sys.exit(f"import_bundle.py: no Superset user {admin!r}")
        meta = yaml.safe_load(contents["metadata.yaml"])
        meta["type"] = "assets"  # the same files, for the importer that overwrites
        contents["metadata.yaml"] = yaml.safe_dump(meta)
        try:
            ImportAssetsCommand(contents).run()
        except Exception as exc:  # the command wraps validation errors: show them
            detail = getattr(exc, "normalized_messages", lambda: "")()
            sys.exit(f"import_bundle.py: import failed: {exc} {detail}")
    counts = {k: sum(1 for f in contents if f.startswith(k + "/"))
              for k in ("databases", "datasets", "charts", "dashboards")}
    print("imported " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f" (bundle: {zip_out})")


if __name__ == "__main__":
    main()
