"""src/url.c against the parsers that read the same URLs: SQLAlchemy (Alembic's), libpq
(through psycopg2's parse_dsn, which is PQconninfoParse) and an RFC 3986 reader (as libcurl
reads an Elasticsearch URL). chartreuse splits a URL once (`url_cli`, tests/unit/test_url.c)
and hands every client the normalized form; each client must then read the same user,
password, host and port as chartreuse did from the URL as the user wrote it."""
import os
import subprocess
import urllib.parse

import psycopg2.extensions
import pytest
from sqlalchemy.engine import make_url

from conftest import UNIT, WRAPPER

URLS = [
    "postgresql://app:pw@db:5432/x",
    "postgresql://app:pa/ss@db:5432/x",
    "postgresql://app:p@ss@db/x",
    "postgresql://app:a@b/c@db/x",
    "postgresql://app:p#w?x@db/x?sslmode=require",
    "postgresql://app:p:q@db/x",
    "postgresql://app:pw@db/x?application_name=a@b",
    "postgresql://app@db/x",
    "postgresql://app:pw@[::1]:5432/x",
    "postgresql://app:p%40w@db/x",
    "postgresql://a%40b:p%2Fq@db/x",
    "postgresql://app:100%@db/x",
    "postgresql://app:p w+x=y&z@db/x",
    "postgresql://app:@db/x",
    "postgresql+psycopg2://app:s3/cr+t=@db.example:6432/app",
    "postgresql://app:é/ü@db/x",
    "postgresql://app:]/[@db/x",
]


def split(urls):
    proc = subprocess.run(WRAPPER + [UNIT, "url_cli"], capture_output=True, text=True,
                          env=dict(os.environ, CR_URL_TEST_INPUT="\n".join(urls)))
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line or
            line == "not-a-url"]
    assert len(rows) == len(urls)
    out = []
    for r in rows:
        user, password, host, port, rest, normalized = r
        out.append({"user": None if user == "-" else user,
                    "password": None if password == "-" else password,
                    "host": host.strip("[]") or None, "port": None if port == "-" else int(port),
                    "rest": rest, "normalized": normalized})
    return out


def sqlalchemy_reads(url):
    u = make_url(url)
    # "user:@host": SQLAlchemy says "", libpq None; both connect without a password
    return {"user": u.username, "password": u.password or None, "host": u.host,
            "port": u.port}


def ours(row):
    return {k: row[k] for k in ("user", "password", "host", "port")}


@pytest.mark.parametrize("url", URLS)
def test_sqlalchemy_reads_the_normalized_url_as_chartreuse_reads_the_url(url):
    row = split([url])[0]
    assert sqlalchemy_reads(row["normalized"]) == ours(row)
    if "@" not in (row["password"] or ""):
        # without an '@' in the password, SQLAlchemy reads the URL as written the same way
        assert sqlalchemy_reads(url) == ours(row)


@pytest.mark.parametrize("url", [u for u in URLS if u.startswith("postgresql")])
def test_libpq_reads_the_normalized_url_as_chartreuse_reads_the_url(url):
    row = split([url])[0]
    scheme, _, rest = row["normalized"].partition("://")
    dsn = psycopg2.extensions.parse_dsn("postgresql://" + rest)
    seen = {"user": dsn.get("user"), "password": dsn.get("password"),
            "host": dsn.get("host"), "port": int(dsn["port"]) if "port" in dsn else None}
    assert seen == ours(row)


@pytest.mark.parametrize("url", ["https://elastic:s/cr@t@es:9200",
                                 "https://elastic:p%40ss@es.example:9200/",
                                 "http://u:a:b#c?d@[::1]:9200/prefix"])
def test_an_rfc3986_reader_reads_the_normalized_url_as_chartreuse_does(url):
    row = split([url])[0]
    s = urllib.parse.urlsplit(row["normalized"])
    seen = {"user": urllib.parse.unquote(s.username), "host": s.hostname, "port": s.port,
            "password": urllib.parse.unquote(s.password)}
    assert seen == ours(row)
