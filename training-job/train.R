#!/usr/bin/env Rscript
# The data scientist's training script (contract: docs/architecture.md, "The data scientist's contract: train.R").
#
# Reads the CSV at DATA_PATH, fits median imputation + normalisation (recipes) and a
# binomial glm on four application features, and writes into MODEL_OUTPUT_PATH:
#   model_v1.rds         a slim list(recipe, fit, features): no training data inside
#   model_metadata.json  {"features": [...], ...}
# It knows nothing about versions: the pipeline stages, validates and registers its output.

suppressPackageStartupMessages({
  library(data.table)
  library(recipes)
  library(jsonlite)
})

FEATURES <- c("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE")
OUTCOME <- "TARGET"

if (!nzchar(Sys.getenv("TZ"))) Sys.setenv(TZ = "UTC")  # R asks timedatectl otherwise, noisily
say <- function(...) cat(format(Sys.time(), "%H:%M:%S"), "train.R:", ..., "\n")
fail <- function(...) {
  message("train.R: error: ", ...)
  quit(status = 1, save = "no")
}

data_path <- Sys.getenv("DATA_PATH")
output_path <- Sys.getenv("MODEL_OUTPUT_PATH")
if (!nzchar(data_path)) fail("DATA_PATH is not set")
if (!nzchar(output_path)) fail("MODEL_OUTPUT_PATH is not set")
if (!file.exists(data_path)) fail("data file not found: ", data_path)

say("reading", data_path)
header <- names(fread(data_path, nrows = 0))
missing_cols <- setdiff(c(OUTCOME, FEATURES), header)
if (length(missing_cols) > 0) {
  fail("missing columns in ", data_path, ": ", paste(missing_cols, collapse = ", "))
}
# Read only what the model needs, as doubles: bake() rejects integer columns later on.
train <- tryCatch(
  fread(data_path, select = c(OUTCOME, FEATURES),
        colClasses = list(numeric = FEATURES), showProgress = FALSE),
  error = function(e) fail("cannot read ", data_path, ": ", conditionMessage(e))
)
if (nrow(train) == 0) fail("no rows in ", data_path)
target <- train[[OUTCOME]]
if (anyNA(target) || !all(target %in% c(0, 1))) fail("TARGET must be 0 or 1 in every row")
if (length(unique(target)) < 2) fail("TARGET has a single class; cannot fit a classifier")
non_numeric <- FEATURES[!vapply(train[, ..FEATURES], is.numeric, logical(1))]
if (length(non_numeric) > 0) fail("non-numeric feature columns: ", paste(non_numeric, collapse = ", "))
train[, (OUTCOME) := factor(get(OUTCOME), levels = c(0, 1))]
train <- as.data.frame(train)
say("rows:", nrow(train), " default rate:", round(mean(target), 4))

say("fitting recipe (median imputation + normalisation)")
rec <- recipe(TARGET ~ ., data = train[0, , drop = FALSE]) |>
  step_impute_median(all_numeric_predictors()) |>
  step_normalize(all_numeric_predictors())
# retain = FALSE: the prepped recipe keeps its statistics, not the training data.
rec <- prep(rec, training = train, retain = FALSE)
baked <- bake(rec, new_data = train)

say("fitting binomial glm")
fit <- glm(TARGET ~ ., data = baked, family = binomial(), model = FALSE, x = FALSE, y = FALSE)
if (!fit$converged) fail("glm did not converge")

# Strip everything predict() does not need: a 307k-row glm is ~50 MB unstripped.
slim_glm <- function(fit) {
  for (field in c("data", "model", "residuals", "fitted.values", "effects", "linear.predictors",
                  "weights", "prior.weights", "y", "offset", "control", "call")) {
    fit[[field]] <- NULL
  }
  fit$qr <- list(rank = fit$qr$rank, pivot = fit$qr$pivot)
  # Formulas capture the environment they were built in; point it somewhere empty.
  attr(fit$terms, ".Environment") <- globalenv()
  attr(fit$formula, ".Environment") <- globalenv()
  fit$family <- binomial()
  fit
}
fit <- slim_glm(fit)

model <- list(recipe = rec, fit = fit, features = FEATURES)
class(model) <- "agi_credit_model"

dir.create(output_path, recursive = TRUE, showWarnings = FALSE)
rds_path <- file.path(output_path, "model_v1.rds")
saveRDS(model, rds_path)
write_json(
  list(features = FEATURES, outcome = OUTCOME, algorithm = "glm (binomial, logit link)",
       preprocessing = "median imputation + normalisation (recipes)",
       coefficients = as.list(coef(fit)), training_rows = nrow(train)),
  file.path(output_path, "model_metadata.json"), auto_unbox = TRUE, pretty = TRUE, digits = NA
)
say("wrote", rds_path, "(", file.size(rds_path), "bytes )")
