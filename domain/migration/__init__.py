"""Migration jobs: the MigrationJob aggregate and what the job kinds share."""
