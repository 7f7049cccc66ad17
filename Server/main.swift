print("fieldbook-server")
