# JSON and text APIs: no file is downloaded, so there is no checksum to check.
import json
import urllib.request

import requests

API = "https://api.example.com/v1"


def latest_run(project):
    return requests.get(f"{API}/runs/{project}", timeout=10).json()


def post_status(run):
    r = requests.get(f"{API}/status/{run}", timeout=10)
    r.raise_for_status()
    return r.json()["state"], r.status_code


def changelog():
    with urllib.request.urlopen(f"{API}/changelog") as response:
        return response.read().decode("utf-8")


def config():
    return json.loads(urllib.request.urlopen(f"{API}/config").read())


def labels():
    return json.load(urllib.request.urlopen(f"{API}/labels"))
