# Saved downloads checked with hashlib, a digest comparison, or a helper that uses hashlib.
import hashlib
import hmac
import shutil
import urllib.request

import requests

URL = "https://example.com/data.zip"
SHA256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch(dest):
    r = requests.get(URL, timeout=60)
    with open(dest, "wb") as handle:
        handle.write(r.content)
    if sha256_of(dest) != SHA256:
        raise ValueError("checksum mismatch")
    return dest


def fetch_raw(dest):
    with urllib.request.urlopen(URL) as response, open(dest, "wb") as handle:
        shutil.copyfileobj(response, handle)
    if not hmac.compare_digest(sha256_of(dest), SHA256):
        raise ValueError("checksum mismatch")
    return dest


def fetch_bytes():
    data = requests.get(URL, timeout=60).content
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise ValueError("checksum mismatch")
    return data
