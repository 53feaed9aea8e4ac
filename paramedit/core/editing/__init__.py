"""What an edit is: regions, the expression language and its functions, values and dtype checks,
initialisers, edit logs, commit history, the identity proof, and autosave."""
