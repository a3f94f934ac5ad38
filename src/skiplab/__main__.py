from skiplab.cli import main

if __name__ == "__main__":  # also when a worker process re-imports the main module
    main()
