import urllib.request

URL = "https://example.com/data.zip"


def fetch(dest):
    urllib.request.urlretrieve(URL, dest)
    return dest
