"""The workbook: the papermill study runner, what the notebooks call, figures and widgets."""
