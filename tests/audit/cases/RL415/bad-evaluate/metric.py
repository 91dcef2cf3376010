import evaluate

metric = evaluate.load("glue", "mrpc")
accuracy = evaluate.load(path="accuracy", revision="main")
