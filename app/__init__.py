"""The Talkstudio application: the command line, the main window and its worker thread."""
