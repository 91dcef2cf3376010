import hashlib
import urllib.request

URL = "https://example.com/data.zip"
SHA256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def fetch(dest):
    urllib.request.urlretrieve(URL, dest)
    with open(dest, "rb") as handle:
        if hashlib.file_digest(handle, "sha256").hexdigest() != SHA256:
            raise ValueError("checksum mismatch")
    return dest
