# R side of agi_credit.rruntime, shared by the embedded session (rpy2) and by the child
# Rscript processes that check compiled scorers against R. Nothing here loads recipes until
# a recipe is baked: a compiled model never needs it in the serving process.

agi_shape <- function(m) {
  if (is.list(m) && inherits(m$recipe, "recipe") && inherits(m$fit, "glm")) "recipe+glm"
  else "generic"
}

agi_features <- function(m, shape) {
  if (is.list(m) && is.character(m$features)) return(m$features)
  if (shape == "recipe+glm") {
    info <- m$recipe$var_info
    return(info$variable[info$role == "predictor"])
  }
  labels <- tryCatch(attr(stats::terms(m), "term.labels"), error = function(e) NULL)
  if (is.character(labels)) labels else character(0)
}

agi_as_frame <- function(columns) {
  df <- as.data.frame(columns, stringsAsFactors = FALSE, optional = TRUE)
  df[] <- lapply(df, function(x) { x[is.nan(x)] <- NA_real_; x })
  df
}

agi_predict <- function(m, df) {
  if (agi_shape(m) == "recipe+glm") {
    baked <- recipes::bake(m$recipe, new_data = df)
    return(as.numeric(stats::predict(m$fit, newdata = baked, type = "response")))
  }
  as.numeric(stats::predict(m, newdata = df, type = "response"))
}

agi_predict_columns <- function(m, columns) agi_predict(m, agi_as_frame(columns))

agi_linear_form <- function(m) {
  fit <- m$fit
  steps <- lapply(m$recipe$steps, function(step) {
    kind <- if (inherits(step, "step_impute_median")) "impute_median"
            else if (inherits(step, "step_normalize")) "normalize"
            else class(step)[1]
    list(kind = kind, skip = isTRUE(step$skip), trained = isTRUE(step$trained),
         medians = if (kind == "impute_median") unlist(step$medians) else NULL,
         means = if (kind == "normalize") step$means else NULL,
         sds = if (kind == "normalize") step$sds else NULL)
  })
  list(family = fit$family$family, link = fit$family$link,
       coefficients = stats::coef(fit),
       terms = attr(stats::terms(fit), "term.labels"),
       has_offset = !is.null(attr(stats::terms(fit), "offset")) || !is.null(fit$offset),
       steps = steps)
}

agi_versions <- function() {
  pkgs <- c("recipes", "data.table", "jsonlite")
  have <- vapply(pkgs, function(p) nzchar(system.file(package = p)), logical(1))
  list(r = paste(R.version$major, R.version$minor, sep = "."),
       packages = vapply(pkgs[have], function(p) as.character(utils::packageVersion(p)),
                         character(1)))
}

# Child-process entry: score each job's rows (doubles, column-major) with its .rds and write
# the probabilities, or the error, next to them.
agi_score_files <- function(job_file) {
  jobs <- jsonlite::fromJSON(job_file, simplifyVector = FALSE)
  for (job in jobs) {
    outcome <- tryCatch({
      m <- readRDS(job$rds)
      features <- unlist(job$features)
      values <- readBin(job$input, "double", n = job$rows * length(features))
      columns <- split(values, rep(features, each = job$rows))[features]
      writeBin(agi_predict(m, agi_as_frame(columns)), job$output)
      "ok"
    }, error = function(e) conditionMessage(e))
    writeLines(outcome, job$status)
  }
}
