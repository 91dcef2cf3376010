# Neither the builtin hash() nor a function merely named "verify"/"digest" checks a file.
import shutil
import urllib.request

import requests

URL = "https://example.com/data.zip"


def fetch(dest):
    r = requests.get(URL, timeout=60)
    with open(dest, "wb") as handle:
        handle.write(r.content)
    print("cache key", hash(dest))
    return dest


def fetch_streamed(dest, session):
    with requests.get(URL, stream=True, timeout=60) as r, open(dest, "wb") as handle:
        for chunk in r.iter_content(chunk_size=1 << 20):
            handle.write(chunk)
    session.verify_ssl()
    return dest


def fetch_raw(dest):
    with urllib.request.urlopen(URL) as response, open(dest, "wb") as handle:
        shutil.copyfileobj(response, handle)
    log_digest(dest)
    return dest


def log_digest(path):
    print(path)
