import pandas as pd

from cxrlab.consensus import majority_vote
from cxrlab.evaluate import score_submission

release = "ws/exports/v1"
readers = pd.read_csv(f"{release}/image_labels_train.csv")  # one row per reader and image
labels = majority_vote(readers)  # one row per image: positive when more than half of its readers said so
print(labels.drop(columns="image_id").sum().sort_values(ascending=False).head(3))

truth = pd.read_csv(f"{release}/annotations_test.csv")  # the test set's consensus boxes
guess = pd.DataFrame({"image_id": truth["image_id"].unique(), "PredictionString": "14 1.0 0 0 1 1"})
print(round(score_submission(truth, guess, metric="kaggle").mAP, 3))  # a submission that says "No finding" everywhere
