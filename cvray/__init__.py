"""cvray: computer-vision workflows as Ray batch jobs with Parquet results."""
__version__ = "0.1.0"
__all__ = ["__version__"]
