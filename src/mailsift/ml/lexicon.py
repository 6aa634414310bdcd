"""Hand-written word and host lists the content features are built from.

Everything here describes a publicly documented phishing or spam *technique*, never a corpus:

* word classes of lures (credentials, account, verification, urgency, money, action, delivery,
  rewards), in English and in the languages a gateway in Brazil, Portugal, Spain, Latin
  America, Germany, the Netherlands, France or Italy must read (a lure's class words survive
  translation; its exact phrases do not);
* hosts abused to serve or hide a phishing page: link shorteners, free hosting and site
  builders, raw cloud object storage, form and document services, IPFS gateways;
* function words (pronouns, articles, prepositions, auxiliaries) of the same languages, which
  the word features leave out: they say which language a message is written in and whether it
  addresses a person ("your", "we"), and a model trained on English list mail learnt both as
  spam (feature version 4, docs/model-card.md);
* the brands most often impersonated (quarterly brand-phishing reports by security vendors),
  including the banks, post and marketplaces of Portuguese- and Spanish-speaking countries.

Lists need upkeep; each entry is matched whole (word) or as a registrable domain / host suffix.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["BRANDS", "CLASSES", "CLASS_OF", "CLOUD_STORAGE", "FORM_HOSTS", "FREE_HOSTS",
           "FREE_TENANTS", "SHORTENERS", "STOPWORDS"]

#: Function words left out of the word features (``s:``, ``w:``, ``b:``). They carry the
#: language and the register of a message, not its intent: "your", "we", "de", "para" pushed
#: person-to-person business mail and every non-English message towards spam, because the
#: training ham is mostly English technical list mail. Lure words ("your account") are still
#: read by the word classes (``k:``), which keep their own lists.
_STOPWORD_TEXT = """
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his she
her hers it its they them their theirs this that these those the a an and or but if of to in on
at by for with from as is are was were be been being am have has had do does did will would
shall should can could may might must not no so than too very just all any some what which who
whom when where why how here there about into over under up down out off again then once also
only own same such both each few more most other per via re fw fwd
der die das den dem des ein eine einen einem einer eines und oder aber wenn dass ich du er sie
es wir ihr mein meine dein deine sein seine unser unsere euer ihre ist sind war waren bin bist
hat haben hatte wird werden wurde kann können muss soll sollen mit von zu zum zur im ins auf an
aus bei nach vor für über unter um bis durch nicht kein keine auch noch schon nur so wie als
sehr hier dort da mir mich dir dich uns euch ihm ihnen sich
le la les un une des du de au aux et ou mais si que qui quoi ce cet cette ces je tu il elle nous
vous ils elles mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs est sont était
être avoir ai as avons avez ont sur dans par pour avec sans sous chez pas ne plus très aussi
en y me te se lui moi toi
el los las una unos unas del al lo y o pero que quien este esta estos estas ese esa yo tú él
ella nosotros vosotros ellos ellas mi mis tu tus su sus nuestro nuestra es son era ser estar
está están he ha han hay con sin por para sobre entre muy también ya le les nos os
os as um uma uns umas do da dos das no na nos nas ao aos à às e ou mas se eu ele ela nós vós
eles elas meu minha meus minhas seu sua seus suas nosso nossa é são era ser estar está estão
tem têm com sem por para pelo pela em muito também já lhe lhes
il lo gli i una uno dei degli delle della dello di da in con su per tra fra e ed o ma se che
chi io lui lei noi voi loro mio mia miei mie tuo tua suo sua nostro nostra vostro è sono era
essere avere ho hai ha abbiamo avete hanno non più molto anche già ci vi ne al allo alla ai
agli alle dal dalla nel nella sul sulla
de het een en of maar als dat die dit deze ik jij je hij zij wij jullie mijn jouw zijn haar
ons onze uw hun is zijn was waren ben bent heeft hebben had wordt worden kan kunnen moet met
van voor naar op aan uit bij om tot door niet geen ook nog al zo er
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

#: Word classes (``k:``). Plain words of lures: a class fires whatever brand, product or
#: language the lure uses, which is what carries across eras and mailboxes.
CLASSES: Mapping[str, frozenset[str]] = {
    "credential": frozenset({
        "password", "passwords", "passcode", "login", "logon", "signin", "credentials",
        "username", "pin", "ssn", "otp",
        # pt / es / de / fr / it
        "senha", "senhas", "contraseña", "contrasena", "clave", "usuario", "usuário",
        "passwort", "kennwort", "zugangsdaten", "anmeldedaten", "motdepasse", "identifiant",
        "identifiants", "credenciales", "credenciais", "wachtwoord", "inloggegevens"}),
    "account": frozenset({
        "account", "accounts", "mailbox", "profile", "membership", "subscription", "wallet",
        "card", "billing", "inbox", "storage", "quota",
        "conta", "cuenta", "cadastro", "cartão", "cartao", "tarjeta", "assinatura",
        "suscripción", "suscripcion", "buzón", "buzon", "caixa", "konto", "kundenkonto",
        "postfach", "abonnement", "compte", "messagerie", "carte", "abbonamento", "casella",
        "rekening"}),
    "verify": frozenset({
        "verify", "verification", "verified", "confirm", "confirmation", "validate",
        "validation", "update", "reactivate", "restore", "unlock", "authenticate", "reconfirm",
        "review",
        "verifique", "verificar", "verificação", "verificacao", "verificación", "verificacion",
        "confirme", "confirmar", "atualize", "atualizar", "atualização", "atualizacao",
        "actualice", "actualizar", "actualización", "actualizacion", "valide", "validar",
        "regularize", "regularizar", "bestätigen", "bestatigen", "verifizieren",
        "aktualisieren", "bestätigung", "vérifier", "verifier", "confirmer", "vérifiez",
        "verifica", "conferma", "aggiorna", "bevestig", "bevestigen", "verifiëren",
        "bijwerken"}),
    "urgency": frozenset({
        "urgent", "urgently", "immediately", "immediate", "suspend", "suspended", "suspension",
        "locked", "limited", "restricted", "expire", "expires", "expired", "expiration",
        "deactivated", "deactivation", "terminated", "termination", "unusual", "unauthorized",
        "unauthorised", "alert", "warning", "final", "deadline", "failure", "failed", "blocked",
        "disabled", "closure",
        "urgente", "imediatamente", "inmediatamente", "bloqueada", "bloqueado", "bloqueio",
        "suspensa", "suspenso", "suspendida", "suspendido", "expira", "expirar", "expirado",
        "expirada", "vence", "vencimento", "vencimiento", "caduca", "caducar", "prazo",
        "plazo", "último", "ultimo", "última", "ultima", "aviso", "alerta", "dringend",
        "gesperrt", "abgelaufen", "läuft", "sofort", "warnung", "frist", "expiré",
        "bloqué", "suspendu", "scaduto", "bloccato", "sospeso", "geblokkeerd", "verlopen",
        "onmiddellijk"}),
    "money": frozenset({
        "payment", "invoice", "refund", "transfer", "bank", "banking", "transaction", "funds",
        "deposit", "tax", "overdue", "prize", "claim", "reward", "bonus",
        "pagamento", "pago", "fatura", "factura", "boleto", "reembolso", "transferência",
        "transferencia", "banco", "depósito", "deposito", "imposto", "impuesto", "pix",
        "zahlung", "rechnung", "erstattung", "überweisung", "paiement", "facture",
        "remboursement", "fattura", "rimborso", "betaling", "factuur", "terugbetaling"}),
    "action": frozenset({
        "click", "follow", "login", "sign", "download", "open", "visit", "access", "proceed",
        "clique", "clic", "haga", "acesse", "acessar", "acceda", "acceder", "ingrese", "entre",
        "klicken", "cliquez", "accédez", "clicca", "accedi", "klik", "qr", "scan"}),
    # Parcel lures ("your package is held, pay the redelivery fee") and reward lures ("your
    # points expire today"): among the most reported lures of recent years in every language.
    "delivery": frozenset({
        "package", "parcel", "shipment", "delivery", "courier", "customs", "redelivery",
        "tracking", "shipping",
        "encomenda", "pacote", "entrega", "remessa", "rastreamento", "correios", "paquete",
        "envío", "envio", "aduana", "alfândega", "alfandega", "paket", "sendung", "zustellung",
        "colis", "livraison", "douane", "pacco", "spedizione", "consegna", "pakket",
        "bestelling", "verzending", "bezorging"}),
    "reward": frozenset({
        "points", "rewards", "redeem", "gift", "giftcard", "voucher", "congratulations",
        "winner", "won", "cashback",
        "pontos", "resgate", "resgatar", "prêmio", "premio", "brinde", "parabéns", "parabens",
        "puntos", "canjear", "regalo", "felicidades", "ganador", "punkte", "gutschein",
        "gewinner", "glückwunsch", "cadeau", "félicitations", "gagnant", "punti", "omaggio",
        "gefeliciteerd", "winnaar", "survey", "questionnaire", "pesquisa", "encuesta",
        "umfrage", "sondage", "enquête", "sondaggio"}),
}


def _class_of(classes: Mapping[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, members in classes.items():
        for word in members:
            out[word] = (*out.get(word, ()), name)
    return out


#: word -> the classes it belongs to
CLASS_OF: Mapping[str, tuple[str, ...]] = _class_of(CLASSES)

#: Link shorteners: a link there hides who really serves the page.
SHORTENERS = frozenset({
    "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly",
    "cutt.ly", "shorturl.at", "tiny.cc", "rb.gy", "t.ly", "s.id", "bl.ink", "lnkd.in", "qr.co",
    "short.io", "ctt.ec", "v.gd", "tinu.be", "shorturl.com", "urlz.fr", "u.to"})
#: Free hosting, site builders and tunnels (registrable domains).
FREE_HOSTS = frozenset({
    "000webhostapp.com", "weebly.com", "wixsite.com", "blogspot.com", "web.app",
    "firebaseapp.com", "appspot.com", "googleapis.com", "r2.dev", "windows.net",
    "azurewebsites.net", "herokuapp.com",
    "netlify.app", "vercel.app", "pages.dev", "workers.dev", "glitch.me", "ngrok.io",
    "ngrok-free.app", "ipfs.io", "dweb.link", "godaddysites.com", "webflow.io", "square.site",
    "mystrikingly.com", "tripod.com", "geocities.com", "freewebs.com", "angelfire.com",
    "formstack.com", "jotform.com", "typeform.com", "sharepoint.com", "1drv.ms",
    "dropboxusercontent.com", "wordpress.com", "surge.sh", "repl.co", "github.io",
    "gitbook.io", "notion.site", "canva.site", "carrd.co", "yolasite.com", "wixstudio.io",
    "framer.app", "framer.website", "onrender.com", "fly.dev", "replit.app", "web3.storage",
    "fleek.co", "4everland.link", "trycloudflare.com", "infinityfreeapp.com", "run.app"})
#: Raw cloud object storage: a bucket URL serves whatever file was uploaded, an HTML login page
#: included, under the cloud provider's reputable name (r2.dev, S3, Google Cloud Storage, Azure).
CLOUD_STORAGE = frozenset({
    "amazonaws.com", "storage.googleapis.com", "firebasestorage.googleapis.com",
    "blob.core.windows.net", "web.core.windows.net", "r2.dev", "digitaloceanspaces.com",
    "backblazeb2.com", "wasabisys.com", "linodeobjects.com", "cloudflare-ipfs.com", "w3s.link",
    "nftstorage.link", "myqcloud.com", "aliyuncs.com"})
#: Form and document services whose pages anyone can create: "view the shared document" and
#: "complete the form to keep your mailbox" lures point here.
FORM_HOSTS = frozenset({
    "forms.gle", "docs.google.com", "sites.google.com", "forms.office.com",
    "forms.microsoft.com", "sway.office.com", "sway.cloud.microsoft", "onedrive.live.com",
    "drive.google.com", "1drv.ms", "dropbox.com", "wetransfer.com", "we.tl", "canva.com",
    "docsend.com", "adobe.ly", "acrobat.adobe.com", "express.adobe.com", "padlet.com",
    "hubspot.com", "zohopublic.com", "formspree.io", "airtable.com"})
#: Brand words of the most impersonated companies (vendors' brand-phishing reports), and of
#: banks, post and marketplaces in Portuguese- and Spanish-speaking countries. Single words, as
#: they appear in a display name; matched against the From address to find a borrowed name.
BRANDS = frozenset({
    "microsoft", "office365", "outlook", "onedrive", "sharepoint", "google", "gmail",
    "apple", "icloud", "itunes", "amazon", "dhl", "fedex", "ups", "usps", "linkedin",
    "walmart", "costco", "netflix", "facebook", "instagram", "whatsapp", "adobe",
    "docusign", "dropbox", "paypal", "venmo", "zelle", "chase", "wellsfargo", "citibank",
    "amex", "americanexpress", "coinbase", "binance", "metamask", "kraken", "norton", "mcafee",
    "avast", "geeksquad", "comcast", "xfinity", "verizon", "booking",
    "airbnb", "roblox", "yahoo", "aol", "ebay", "irs", "hmrc", "webmail", "zimbra",
    "roundcube", "cpanel", "godaddy", "bradesco", "itau", "itaú", "caixa", "santander",
    "nubank", "correios", "livelo", "serasa", "mercadolivre", "mercadolibre", "bbva",
    "caixabank", "bankinter", "sabadell", "bancolombia", "banorte", "correos", "sicredi",
    "sicoob", "movistar", "magalu"})
#: Sending domains anyone gets for free with a trial tenant or a form service: a "Microsoft
#: Security" mail from ``*.onmicrosoft.com`` is a trial account, not Microsoft.
FREE_TENANTS = frozenset({"onmicrosoft.com", "typeform.io", "jotform.com", "formstack.com"})
